"""What the alert service talks to: SQL, webhooks, the time-series store."""
