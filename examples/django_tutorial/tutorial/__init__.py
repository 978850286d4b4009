"""The classic Django session tutorial, rebuilt on huihua (see ../README.md)."""
