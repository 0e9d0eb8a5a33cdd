"""Work that follows the event log or runs on a schedule, beside the HTTP surfaces of a serving process."""
