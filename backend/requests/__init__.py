"""Residents asking for help themselves: sign-up by phone, requests (also as a guest), their status."""
