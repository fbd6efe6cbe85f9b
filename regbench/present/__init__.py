"""Presentation: terminal tables, figures and the shareable report."""
