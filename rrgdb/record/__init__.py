"""rrgdb.record"""
