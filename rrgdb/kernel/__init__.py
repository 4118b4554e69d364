"""rrgdb.kernel"""
