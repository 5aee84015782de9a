"""Move a website's Matomo history into PostHog: extract, transform and load, one site-local day at a time."""
