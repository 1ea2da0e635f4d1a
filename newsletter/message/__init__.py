"""One message for one person, composed from a rendered variant."""
