"""Screening: sessions, dual review, conflicts, agreement, prioritisation, simulation."""
