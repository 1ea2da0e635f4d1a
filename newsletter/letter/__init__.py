"""The letter itself: an issue folder loaded, assembled into numbered sections and rendered, in memory."""
