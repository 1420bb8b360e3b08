"""The gateway's routes, by concern: jobs, their events, their downloads, health."""
