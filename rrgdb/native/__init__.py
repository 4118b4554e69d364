"""rrgdb.native"""
