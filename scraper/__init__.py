"""RoomFit scraper: builds the product image set (manifest.jsonl + images) from shop pages or a local dataset."""
