"""Metrics service (پایش برنامه): the programme's live figures."""
