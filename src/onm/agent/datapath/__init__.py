"""Datapaths: the I/O that feeds the agent's core frames and packets and carries out its actions."""
