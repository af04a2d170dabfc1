"""Valerie: infrastructure for chatbots that keep state between turns."""
