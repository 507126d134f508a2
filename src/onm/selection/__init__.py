"""Choosing among alternative destinations (seed 0's pool members; later, seed 1's gateways).

Pure code: candidates, the requester and every input that varies (a turn counter, a random
draw, the previous choice) are arguments, and the answer is a ranking. Nothing here reads a
clock, a socket or the database.
"""
