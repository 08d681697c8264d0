"""Small helpers shared by the plugin\x27s modules."""
