"""Sending a campaign: its lifecycle and loop, dry runs and test copies, worker processes, pacing, providers."""
