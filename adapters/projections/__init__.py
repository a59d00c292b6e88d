"""Running projections: batches of events -> read-model transactions with tracking."""
