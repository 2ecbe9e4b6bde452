"""Scrapy spiders and site adapters."""
