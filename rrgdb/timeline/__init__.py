"""rrgdb.timeline"""
