"""The Runs tab: its layout, its handlers (open, delete, overlay, download, upload) and their events."""
