"""Lowerings of the IR: networkx graph, graphviz diagram, torch module. Pure functions of the IR."""
