"""Each module owns one outside resource: the API, media downloads, the ledger, image storage."""
