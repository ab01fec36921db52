"""Analytics: roll-ups, completeness, forecasts and shortage alerts, as pure functions over the store's Ibis
expressions. The CLI and the web call them; they never import either."""
