"""What the citizen wants, the work they did, labour-market signals, and one plan."""
