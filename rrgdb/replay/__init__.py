"""rrgdb.replay"""
