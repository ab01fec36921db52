"""The dashboard's pages: server-rendered HTML over the same functions as the REST API, each with its tables as
CSV. No rule or query lives here: handlers gather view models from ``mutual.app``, analytics and planning."""
