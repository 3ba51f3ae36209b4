"""User and item state: the interface (``base``) and its backends (``memory``, ``cassandra``)."""
