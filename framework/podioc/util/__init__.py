"""Small helpers every layer may use (no podioc imports)."""
