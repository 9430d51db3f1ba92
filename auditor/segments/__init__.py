"""auditor.segments"""
