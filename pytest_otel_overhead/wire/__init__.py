"""Records in and out of JSON: between processes (``transport``) and as documents that files keep (``document``)."""
