"""Privacy building blocks: BSN validation, pseudonyms, field encryption."""
