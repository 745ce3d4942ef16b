"""The session's start: what every pytest run of the project does before its first test."""
