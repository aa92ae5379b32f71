"""Reference data every service shares, each with its source named."""
