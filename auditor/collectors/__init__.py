"""auditor.collectors"""
