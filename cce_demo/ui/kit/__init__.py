"""The shared kit of every tab: charts, formatting, theme, names and colours, view state, expected errors,
visitor identity and ownership, admission limits, measured facts."""
