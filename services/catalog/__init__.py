"""Catalog service (پنجره ملی خدمات): agencies, their services, every delivery."""
