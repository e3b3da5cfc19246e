"""What batchgen knows about each model: parameters, image inputs, outputs, latency, price."""
