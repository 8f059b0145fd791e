"""The Results tab: the shipped result grids, drawn once at start-up."""
