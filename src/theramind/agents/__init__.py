"""The three agents: diagnostician, strategist and responder."""
