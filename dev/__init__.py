"""The development harness: the demo, the chaos run, the synthetic scenario they play and a private RabbitMQ node.
Not part of the product (not packaged); it uses the product as its users do."""
