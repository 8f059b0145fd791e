"""The Classify tab: its layout, its handler and its events."""
