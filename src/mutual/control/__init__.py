"""The control plane: transactional records (submissions now; users, agreements and plans later)."""
