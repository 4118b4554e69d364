"""rrgdb.trace"""
