"""Stand-ins for services outside GridAid (push services, SMS gateways), real over the network."""
