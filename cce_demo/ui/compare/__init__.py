"""The Train & compare tab: its layout, its handlers and their events, the compare view's core (view.py)
and the pure drawing of a snapshot (views.py, verdict.py)."""
