"""The LangGraph graphs: the intra-session loop and the cross-session loop."""
