"""music"""
