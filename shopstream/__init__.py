"""ShopStream: the online shop's back end (customer identity and product catalogue)."""

__version__ = "0.1.0"
