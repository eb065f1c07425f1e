"""What runs on the device, one module per stage, in the order a frame meets them:

    detect/            sensitive-object detectors by name (faces, plates, text, screens, ...)
    sensitive_memory   sensitive boxes held across video frames
    roi                the region of interest: what is sent at all
    known_objects      what the previous frame found: where the partition may cut
    partition, tiling  the frame cut into chunks, one per server; each chunk's treatment
    privatize, head    sensitive regions filled, and their feature patches (the split model's head)
    fill               what a filled region's pixels become (black, or inpainted from its surroundings)
    schedule, dispatch which server gets which chunk; sending and re-sending them
    merge              the chunks' detections put back together into one frame result

``privinfer.pipeline`` calls them top-down. Nothing here serves: the server side is ``privinfer.serve``.
"""
