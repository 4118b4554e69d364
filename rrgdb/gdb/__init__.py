"""rrgdb.gdb"""
