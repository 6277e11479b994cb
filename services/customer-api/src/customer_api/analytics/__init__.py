"""Customer value: RFM segments, the value pyramid, CLV with P(alive), churn risk."""
