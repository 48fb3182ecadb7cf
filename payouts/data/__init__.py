"""Sample files of the payout formats (Zengin transfer and result files, a settlement CSV)."""
